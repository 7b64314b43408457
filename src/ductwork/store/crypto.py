"""Encryption of stored secrets with Fernet (``pip install 'ductwork[crypto]'``).

The key is the ``fernet_key`` setting (``DUCTWORK_FERNET_KEY``): one key, or several separated
by commas to rotate (the first encrypts, all decrypt). ``generate_key()`` makes a new one
(``ductwork connections generate-key``). Without a key, nothing secret can be stored: the
error says how to set one, rather than writing a password in clear.
"""

from __future__ import annotations

from typing import Any

from ductwork.store.errors import StoreError


class SecretKeyError(StoreError):
    """A secret must be stored or read and no (valid, matching) Fernet key is configured."""


_HOW = (
    "set the fernet_key setting (DUCTWORK_FERNET_KEY, fernet_key in ductwork.toml, or the home's fernet.key "
    "file, which `ductwork standalone` writes) to a key made by `ductwork connections generate-key`"
)


def _fernet_module() -> Any:
    try:
        from cryptography import fernet
    except ImportError as exc:
        raise SecretKeyError(
            f"storing secrets needs the 'cryptography' package ({exc}); install it with: pip install 'ductwork[crypto]'"
        ) from exc
    return fernet


def no_key(why: str) -> SecretKeyError:
    return SecretKeyError(f"{why}, and no Fernet key is configured: {_HOW}")


def generate_key() -> str:
    return str(_fernet_module().Fernet.generate_key().decode("ascii"))


class Cipher:
    """Encrypts and decrypts text with the configured key(s); ``Cipher("")`` has no key."""

    def __init__(self, keys: str) -> None:
        self._keys = [k.strip() for k in keys.split(",") if k.strip()]
        self._fernet: Any = None

    @property
    def has_key(self) -> bool:
        return bool(self._keys)

    def _get(self, why: str) -> Any:
        if not self._keys:
            raise no_key(why)
        if self._fernet is None:
            fernet = _fernet_module()
            try:
                self._fernet = fernet.MultiFernet([fernet.Fernet(k.encode("ascii")) for k in self._keys])
            except (ValueError, UnicodeEncodeError):
                raise SecretKeyError(
                    f"the fernet_key setting is not a valid Fernet key (32 url-safe base64-encoded bytes): {_HOW}"
                ) from None
        return self._fernet

    def encrypt(self, text: str, *, why: str) -> str:
        return str(self._get(why).encrypt(text.encode("utf-8")).decode("ascii"))

    def decrypt(self, token: str, *, why: str) -> str:
        fernet = self._get(why)
        try:
            return str(fernet.decrypt(token.encode("ascii")).decode("utf-8"))
        except Exception:
            raise SecretKeyError(
                f"{why}: the value cannot be decrypted with the configured fernet_key (it was stored with "
                "another key; to rotate, give the new key first and the old one after it, separated by a comma, "
                "then run `ductwork connections rotate-key` before dropping the old one)"
            ) from None
