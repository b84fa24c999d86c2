"""The provider's side: the billing back office (`billing/`), the web application (`web/`) and
the handsets' data link (`link/`). CPython only; it speaks to handsets through the formats in
`protocol/` and the host key code in `host_tools/`."""
