"""The handsets' data link: an asyncio server that acts as the host for handsets that dial in.

store.py    the link's tables (handset status, directive deliveries, uploaded log records)
host.py     the host side of the framed protocol over an asyncio stream
session.py  one handset's connection: directives, log upload, status
server.py   the asyncio service (TCP, optional TLS), one process for thousands of handsets
cli.py      `lci-server link`
"""
