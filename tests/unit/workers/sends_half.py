"""A replica process that announces a large Done, sends half of it and then waits to be killed:
a crash in the middle of a large message, for ProcessReplica's tests. Named acme/reads-nothing,
it waits to be killed before reading a batch: a batch that cannot be sent whole."""

import os
import signal
import struct
import sys
from multiprocessing.connection import Connection
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from worker_doubles import SIGNATURE

from foretell.workers.lifeline import die_with_parent
from foretell.workers.protocol import Large, Ready

SIZE = 64 << 20

if __name__ == "__main__":
    fd, parent_pid = int(sys.argv[1]), int(sys.argv[2])
    die_with_parent(parent_pid)
    conn = Connection(fd)
    conn.recv()  # Setup
    conn.send(Ready(SIGNATURE, 0.0))
    if sys.argv[3] == "acme/reads-nothing:1":
        signal.pause()
    conn.recv()  # Predict
    conn.send(Large(SIZE))
    # Connection's framing (a 4-byte length, then the bytes), cut off halfway through.
    half = memoryview(struct.pack("!i", SIZE) + bytes(SIZE // 2))
    while half:
        half = half[os.write(fd, half) :]
    signal.pause()
