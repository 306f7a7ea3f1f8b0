"""Windows events: the EVTX file reader, the live Event Log source, the ECS normaliser and the service.

Both the ``.evtx`` reader and the live source turn a record into the same dict shape (the one the
``evtx`` package's JSON output uses) and hand it to one normaliser, so an event reads the same
whether it was hunted offline or shipped live. Nothing here imports pywin32 unless it runs on Windows.
"""
