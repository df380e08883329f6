"""`python -m foretell.workers FD MODEL`: a replica process, started by ProcessReplica.

FD is this end of the parent's pipe; MODEL only names the process for whoever lists them."""

import sys
from multiprocessing.connection import Connection

from foretell.workers.child import main

if __name__ == "__main__":
    main(Connection(int(sys.argv[1])))
