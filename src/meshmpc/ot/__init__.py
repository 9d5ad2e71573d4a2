"""Oblivious transfer: base OT, IKNP / SoftSpoken extension, KKRT 1-out-of-N OT, pools.

How to use (every call is ``async`` and takes whole batches; outputs are
numpy arrays, 16-byte messages as (n, 16) uint8 - ``.view(np.uint64)`` gives
(n, 2) words; choice bits are uint8 arrays of 0/1)::

    from meshmpc.ot import OtPool

    pool = await OtPool.setup(ctx, peer)          # base OTs, both directions, once
                                                   # (SoftSpokenOT k=4; engine="iknp" too)

    # correlated OT with a global delta (this party sends, the peer receives)
    q = await pool.sender.cot(n)                   # sender: q (n, 16), pool.sender.delta (16,)
    t = await pool.receiver.cot(choices)           # peer:   t = q ^ choices * delta
    choices, t = await pool.receiver.random_cot(n) # peer, random choice bits

    # random OT: sender (m0, m1); receiver (choices, m_choice)
    m0, m1 = await pool.sender.rot(n)
    choices, m = await pool.receiver.rot(n)        # or rot(choices)

    # chosen-message OT of 16-byte messages
    await pool.sender.send(m0, m1)
    m = await pool.receiver.receive(choices)

    # arithmetic correlated OT over Z_2^64 (Gilboa products, OT-based triples)
    a = await pool.sender.send_correlated(x)       # x uint64 (n,) or (n, 2)
    y = await pool.receiver.receive_correlated(choices)   # y = a + choices * x mod 2^64

    # pre-computation: both parties stock random COTs ahead of time; later calls
    # of at most the stocked size send only 1 bit per OT online
    await pool.sender.prefill(n)                   # peer: await pool.receiver.prefill(n)

    # KKRT OPRF (1-out-of-N OT with a pseudo-random code) for KKRT PSI
    oprf_key_holder = await pool.kkrt_sender()    # the peer: await pool.kkrt_receiver()
    key = await oprf_key_holder.extend(m)          # peer: values = await recv.encode(inputs)
    f = key.evaluate(indices, items)               # F(j, x) for any x

Matching calls on the two parties must come in the same order per direction.
Protocol costs, rounds and security: protocols/ot.md. Stand-alone pieces:
:func:`meshmpc.ot.base.base_ot_send` / :func:`~meshmpc.ot.base.base_ot_receive`,
:class:`~meshmpc.ot.iknp.CotSender` / :class:`~meshmpc.ot.iknp.CotReceiver`,
:class:`~meshmpc.ot.softspoken.SoftSpokenSender` /
:class:`~meshmpc.ot.softspoken.SoftSpokenReceiver` (same methods),
:class:`~meshmpc.ot.kkrt.KkrtSender` / :class:`~meshmpc.ot.kkrt.KkrtReceiver`.
"""

from meshmpc.ot.base import base_ot_receive, base_ot_send
from meshmpc.ot.errors import OtInputError, OtProtocolError
from meshmpc.ot.iknp import CotReceiver, CotSender
from meshmpc.ot.kkrt import KkrtKey, KkrtReceiver, KkrtSender
from meshmpc.ot.pool import OtPool, setup_pools
from meshmpc.ot.softspoken import SoftSpokenReceiver, SoftSpokenSender

__all__ = [
    "CotReceiver",
    "CotSender",
    "KkrtKey",
    "KkrtReceiver",
    "KkrtSender",
    "OtInputError",
    "OtPool",
    "OtProtocolError",
    "SoftSpokenReceiver",
    "SoftSpokenSender",
    "base_ot_receive",
    "base_ot_send",
    "setup_pools",
]
