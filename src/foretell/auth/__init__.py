"""Who is calling: API keys (made, listed, revoked), credentials from headers, rate limits."""

from foretell.auth.authenticator import Authenticator
from foretell.auth.credentials import carries_credential, credential
from foretell.auth.keys import KeyManager, NewKey

__all__ = ["Authenticator", "KeyManager", "NewKey", "carries_credential", "credential"]
