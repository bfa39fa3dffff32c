"""Close codes a client acts on.

1012 (service restart) is the standard code; the 4000s are ours.
"""

from __future__ import annotations

# The server is going away: reconnect (to it or another process) with ?after=<last id>.
SERVER_RESTART = 1012
# The server cannot serve the stream just now (its database is away): reconnect a little later
# with ?after=<last id>. The standard "try again later" code.
TRY_AGAIN_LATER = 1013
# The client read too slowly and its queue filled: reconnect with ?after=<last id>.
BEHIND = 4000
# The events after the client's id are no longer kept (or were never written here): reload
# the inbox with the REST API, then connect without ?after.
RESYNC = 4001
# The client sent frames faster than anyone types.
TOO_MANY_FRAMES = 4008
# The token or session the socket was opened with was revoked, or its person deactivated:
# do not reconnect with it (the handshake would get 401); sign in again.
ACCESS_ENDED = 4401
