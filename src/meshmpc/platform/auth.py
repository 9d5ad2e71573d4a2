"""Users, roles, passwords, second factors, lockout, sessions and API tokens of a node.

Roles follow the separation of duties banks' level-3 protection rules expect:
the system administrator (``admin``), the security administrator
(``security``) and the audit administrator (``auditor``) are different
accounts (no account holds two of them), and only the auditor reads the audit
log; nobody can alter it (its tables refuse UPDATE and DELETE). Business roles:
``analyst`` (datasets, jobs), ``approver`` (approves jobs, model deployments and
strategy publications: maker-checker) and ``strategy_editor``.

Passwords are hashed with Argon2id (libsodium through PyNaCl); privileged
accounts need a TOTP second factor (RFC 6238, pyotp); five failed logins lock
an account for 15 minutes; browser sessions expire after 30 idle minutes and
12 hours at most and carry a CSRF token; API tokens expire (90 days default).
Only SHA-256 digests of session and token secrets are stored, and no secret is
ever logged.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

import nacl.pwhash
import pyotp
from nacl.exceptions import InvalidkeyError
from sqlalchemy import select
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm import joinedload

from meshmpc.errors import MeshMPCError
from meshmpc.platform.db import NodeDatabase
from meshmpc.platform.models import Session, User

ROLES = ("admin", "security", "auditor", "analyst", "approver", "strategy_editor")
EXCLUSIVE_ROLES = frozenset({"admin", "security", "auditor"})
PRIVILEGED_ROLES = frozenset({"admin", "security", "auditor", "approver"})
MAX_FAILED_LOGINS = 5
LOCKOUT_SECONDS = 15 * 60
BROWSER_IDLE_SECONDS = 30 * 60
BROWSER_MAX_SECONDS = 12 * 3600
TOKEN_DEFAULT_DAYS = 90
MIN_PASSWORD_LENGTH = 12
PRINCIPAL_CACHE_S = 5.0

PERMISSIONS: dict[str, frozenset[str]] = {
    "datasets.read": frozenset(ROLES),
    "users.write": frozenset({"admin"}),
    "peers.write": frozenset({"admin"}),
    "datasets.write": frozenset({"analyst", "admin"}),
    "grants.write": frozenset({"security"}),
    "keys.manage": frozenset({"security"}),
    "jobs.submit": frozenset({"analyst"}),
    "jobs.approve": frozenset({"approver"}),
    "jobs.cancel": frozenset({"analyst", "admin"}),
    "models.deploy": frozenset({"approver"}),
    "lookups.admit": frozenset({"analyst"}),
    "strategies.edit": frozenset({"strategy_editor"}),
    "strategies.publish": frozenset({"approver"}),
    "audit.read": frozenset({"auditor"}),
}


class AuthError(MeshMPCError, PermissionError):
    """Login refused, session invalid, or a role without the right to act."""

    def __init__(self, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Principal:
    """Who is acting: the user, their roles, and how they authenticated."""

    user_id: int
    name: str
    roles: frozenset[str]
    via: str  # "browser" | "token"
    csrf: str | None = None

    def require(self, permission: str) -> None:
        allowed = PERMISSIONS[permission]
        if not self.roles & allowed:
            raise AuthError(f"user {self.name!r} (roles: {', '.join(sorted(self.roles)) or 'none'})"
                            f" may not {permission}; it needs one of: {', '.join(sorted(allowed))}",
                            status=403)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def hash_password(password: str, memory_mb: int = 64) -> str:
    """Argon2id at libsodium's interactive ops limit and ``memory_mb`` MiB (at least 8)."""
    memory = max(8, memory_mb) * 2**20
    return nacl.pwhash.argon2id.str(password.encode(), opslimit=nacl.pwhash.argon2id.
                                    OPSLIMIT_INTERACTIVE, memlimit=memory).decode()


def check_roles(roles: list[str]) -> list[str]:
    """Validate a role list: known names, at most one of admin/security/auditor."""
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise AuthError(f"unknown role(s) {unknown}; roles are {', '.join(ROLES)}", status=400)
    exclusive = EXCLUSIVE_ROLES & set(roles)
    if len(exclusive) > 1:
        raise AuthError(f"roles {sorted(exclusive)} must be held by different accounts "
                        "(separation of system, security and audit administration)", status=400)
    return sorted(set(roles))


class Accounts:
    """User management and authentication over the node database."""

    def __init__(self, db: NodeDatabase, password_memory_mb: int = 64) -> None:
        self.db = db
        self.password_memory_mb = password_memory_mb
        self._recent: dict[str, tuple[float, Principal]] = {}

    def create_user(self, name: str, password: str, roles: list[str]) -> str | None:
        """Create an account; returns the TOTP provisioning URI for privileged roles."""
        roles = check_roles(roles)
        if len(password) < MIN_PASSWORD_LENGTH:
            raise AuthError(f"password for {name!r} must have at least {MIN_PASSWORD_LENGTH} "
                            "characters", status=400)
        totp = pyotp.random_base32() if PRIVILEGED_ROLES & set(roles) else None
        with self.db.session() as s:
            if s.scalar(select(User).where(User.name == name)) is not None:
                raise AuthError(f"user {name!r} exists", status=409)
            s.add(User(name=name, password_hash=hash_password(password, self.password_memory_mb),
                       roles=roles,
                       totp_secret=totp))
        return pyotp.TOTP(totp).provisioning_uri(name=name, issuer_name="meshmpc") if totp else None

    def set_roles(self, name: str, roles: list[str]) -> None:
        roles = check_roles(roles)
        self._recent.clear()
        with self.db.session() as s:
            user = self._user(s, name)
            user.roles = roles
            if PRIVILEGED_ROLES & set(roles) and not user.totp_secret:
                user.totp_secret = pyotp.random_base32()

    def totp_uri(self, name: str) -> str | None:
        with self.db.session() as s:
            user = self._user(s, name)
            return (pyotp.TOTP(user.totp_secret).provisioning_uri(name=name,
                                                                    issuer_name="meshmpc")
                    if user.totp_secret else None)

    @staticmethod
    def _user(s: OrmSession, name: str) -> User:
        user = s.scalar(select(User).where(User.name == name))
        if user is None:
            raise AuthError(f"no user {name!r}", status=404)
        return user

    def login(self, name: str, password: str, otp: str | None = None, kind: str = "browser",
              days: int = TOKEN_DEFAULT_DAYS, label: str | None = None) -> tuple[str, Principal]:
        """Check the password (and TOTP); returns a new session or token secret."""
        t = time.time()
        with self.db.session() as s:
            user = s.scalar(select(User).where(User.name == name))
            if user is None or user.disabled:
                raise AuthError("wrong user name or password")
            if user.locked_until > t:
                raise AuthError(f"account {name!r} is locked after {MAX_FAILED_LOGINS} failed "
                                f"logins; try again in {int(user.locked_until - t) // 60 + 1} min")
            accepted = self._password_ok(user, password) and self._otp_ok(user, otp)
            if accepted:
                user.failed_logins = 0
                secret = secrets.token_urlsafe(32)
                csrf = secrets.token_urlsafe(24) if kind == "browser" else None
                expires = t + (BROWSER_MAX_SECONDS if kind == "browser" else days * 86400)
                s.add(Session(token_hash=_digest(secret), user_id=user.id, kind=kind, csrf=csrf,
                              expires=expires, label=label))
                return secret, Principal(user.id, user.name, frozenset(user.roles), kind, csrf)
        self._record_failure(name, t)
        raise AuthError("wrong user name, password or one-time code")

    def _record_failure(self, name: str, t: float) -> None:
        """Count a failed login in its own transaction (the refusal must not roll it back)."""
        with self.db.session() as s:
            user = self._user(s, name)
            user.failed_logins += 1
            if user.failed_logins >= MAX_FAILED_LOGINS:
                user.locked_until, user.failed_logins = t + LOCKOUT_SECONDS, 0

    @staticmethod
    def _password_ok(user: User, password: str) -> bool:
        try:
            return bool(nacl.pwhash.verify(user.password_hash.encode(), password.encode()))
        except InvalidkeyError:
            return False

    @staticmethod
    def _otp_ok(user: User, otp: str | None) -> bool:
        if not user.totp_secret:
            return True
        return bool(otp) and pyotp.TOTP(user.totp_secret).verify(str(otp), valid_window=1)

    def authenticate(self, secret: str) -> Principal:
        """The principal behind a session cookie or bearer token (idle timeout applied).

        A token checked in the last ``PRINCIPAL_CACHE_S`` seconds is not looked up
        again (read endpoints under load); logout and role changes clear the cache.
        """
        cached = self.cached(secret)
        if cached is not None:
            return cached
        t = time.time()
        digest = _digest(secret)
        principal = self._lookup(digest, t)
        if len(self._recent) > 10_000:
            self._recent.clear()
        self._recent[digest] = (t, principal)
        return principal

    def cached(self, secret: str) -> Principal | None:
        """The principal if ``secret`` was checked in the last ``PRINCIPAL_CACHE_S`` seconds
        (no database access: the API's event loop asks this before a worker thread looks up)."""
        entry = self._recent.get(_digest(secret))
        if entry is not None and time.time() - entry[0] < PRINCIPAL_CACHE_S:
            return entry[1]
        return None

    def _lookup(self, digest: str, t: float) -> Principal:
        with self.db.session() as s:
            session = s.scalar(select(Session).options(joinedload(Session.user))
                               .where(Session.token_hash == digest))
            if session is None or session.expires < t:
                raise AuthError("not logged in, or the session expired; log in again")
            if session.kind == "browser" and t - session.last_used > BROWSER_IDLE_SECONDS:
                s.delete(session)
                raise AuthError("session timed out after 30 idle minutes; log in again")
            user = session.user
            if user.disabled:
                raise AuthError("account disabled")
            if t - session.last_used > 60:  # avoid a write per request
                session.last_used = t
            return Principal(user.id, user.name, frozenset(user.roles), session.kind,
                             session.csrf)

    def logout(self, secret: str) -> None:
        self._recent.clear()
        with self.db.session() as s:
            session = s.scalar(select(Session).where(Session.token_hash == _digest(secret)))
            if session is not None:
                s.delete(session)
