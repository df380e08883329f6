"""`python -m foretell.workers FD PARENT_PID MODEL`: a replica process, started by ProcessReplica.

FD is this end of the parent's socket; PARENT_PID the server it must not outlive (see
lifeline.py); MODEL only names the process for whoever lists them."""

import sys

from foretell.workers.child import main

if __name__ == "__main__":
    main(sys.argv[1:])
