"""Tessera: signed tokens from the identity provider to every API.

>>> from tessera import jose
>>> key = jose.Key.generate("HS256")
>>> jose.jwt.decode(jose.jwt.encode({"sub": "ada", "exp": 2**31}, key), key, algorithms=["HS256"])
{'sub': 'ada', 'exp': 2147483648}
"""

__version__ = "0.1.0"
