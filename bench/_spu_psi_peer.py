"""The same PSI in SecretFlow (spu.psi), two parties over loopback brpc, for ``--compare-spu``.

Run by the interpreter the user names (a separate venv holding ``spu``; never a
dependency of meshmpc, and never imported by it): ``PYTHON _spu_psi_peer.py N
PROTOCOL CURVE REPEATS`` prints one JSON object ``{"spu_wall_s", "spu_walls",
"spu_protocol", "spu_curve", "spu_intersection"}``. Inputs: N distinct 16-digit
ids per party, half shared (as /work/shared/peers/spu_psi.py, which took the
compass figures); wall time of the slower party's ``psi_execute``, file to file.
"""

import json
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time


def _write_ids(path: str, start: int, n: int) -> None:
    with open(path, "w") as f:
        f.write("id\n")
        f.writelines(f"{i:016d}\n" for i in range(start, start + n))


def _party(rank: int, protocol: str, curve: str, d: str, port: int, q: "mp.Queue") -> None:
    import spu.libspu.link as link
    import spu.psi as psi

    desc = link.Desc()
    desc.id = "bench"
    desc.add_party("alice", f"127.0.0.1:{port}")
    desc.add_party("bob", f"127.0.0.1:{port + 1}")
    desc.recv_timeout_ms = 3600 * 1000
    lctx = link.create_brpc(desc, rank)
    cfg = psi.PsiExecuteConfig(
        protocol_conf=psi.PsiProtocolConfig(
            protocol=psi.parse_protocol(protocol), receiver_rank=0, broadcast_result=True,
            ecdh_params=psi.EcdhParams(curve=getattr(psi.EllipticCurveType, curve))),
        input_params=psi.InputParams(path=f"{d}/in{rank}.csv", selected_keys=["id"],
                                     keys_unique=True),
        output_params=psi.OutputParams(path=f"{d}/out{rank}.csv", disable_alignment=True),
    )
    start = time.time()
    result = psi.psi_execute(cfg, lctx)
    q.put((rank, time.time() - start, result.intersection_count))
    lctx.stop_link()


def _one(n: int, protocol: str, curve: str, d: str, run: int) -> tuple[float, int]:
    q: mp.Queue = mp.Queue()
    port = 20000 + (os.getpid() * 7 + 2 * run) % 20000
    procs = [mp.Process(target=_party, args=(r, protocol, curve, d, port, q)) for r in (0, 1)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    if any(p.exitcode for p in procs):
        raise SystemExit(f"spu psi {protocol}: a party exited with {[p.exitcode for p in procs]}")
    results = sorted(q.get() for _ in procs)
    return max(r[1] for r in results), results[0][2]


def main() -> None:
    n, protocol, curve, repeats = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
    d = tempfile.mkdtemp(prefix="spu-psi-")
    _write_ids(f"{d}/in0.csv", 0, n)
    _write_ids(f"{d}/in1.csv", n // 2, n)
    runs = [_one(n, protocol, curve, d, r) for r in range(repeats)]
    walls = [w for w, _ in runs]
    print(json.dumps({"spu_wall_s": round(statistics.median(walls), 3),
                      "spu_walls": [round(w, 3) for w in walls], "spu_protocol": protocol,
                      "spu_curve": curve, "spu_intersection": runs[0][1]}))


if __name__ == "__main__":
    main()
