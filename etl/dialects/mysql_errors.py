"""MySQL and MariaDB error numbers: which a retry can cure, which mean refused rows."""

from __future__ import annotations

TRANSIENT = frozenset(
    {
        1040,  # ER_CON_COUNT_ERROR: too many connections
        1053,  # ER_SERVER_SHUTDOWN
        1158,  # ER_NET_READ_ERROR
        1159,  # ER_NET_READ_INTERRUPTED
        1160,  # ER_NET_ERROR_ON_WRITE
        1161,  # ER_NET_WRITE_INTERRUPTED
        1205,  # ER_LOCK_WAIT_TIMEOUT
        1213,  # ER_LOCK_DEADLOCK
        1927,  # ER_CONNECTION_KILLED (MariaDB)
        2002,  # CR_CONNECTION_ERROR (socket)
        2003,  # CR_CONN_HOST_ERROR: connection refused
        2006,  # CR_SERVER_GONE_ERROR
        2013,  # CR_SERVER_LOST
        2055,  # CR_SERVER_LOST_EXTENDED
        4031,  # ER_CLIENT_INTERACTION_TIMEOUT: idle connection closed by the server
    }
)
"""Server (ER_*) and client (CR_*) error numbers a retry can cure."""
DATA = frozenset(
    {
        1048,  # column cannot be null
        1062,  # duplicate entry (a unique index besides the key)
        1264,  # out of range value
        1265,  # data truncated
        1292,  # incorrect value
        1366,  # incorrect string value
        1406,  # data too long
        1451,  # foreign key: row is referenced
        1452,  # foreign key: parent row missing
        1644,  # SIGNAL from a trigger or procedure
        3819,  # check constraint violated (MySQL)
        4025,  # CONSTRAINT ... failed (MariaDB)
    }
)
"""Error numbers that mean the server refused some of the rows written."""
LOAD_WARNED = 1265
"""How a LOAD DATA that warned (LOCAL makes the server's refusals warnings) is raised
when its warning's own number is not in :data:`DATA`: as data truncated, so the batch
is redone row by row, where the server refuses the row itself."""
