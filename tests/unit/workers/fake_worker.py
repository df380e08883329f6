"""A replica process whose model is a double from worker_doubles.py, chosen by the version's name:
ProcessReplica's command in tests. It runs the real entry point (child.main: the lifeline, the
signal handlers, the loop); only the runtime's loader is replaced."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from worker_doubles import load

from foretell.workers.child import main

if __name__ == "__main__":
    main(sys.argv[1:], load)
