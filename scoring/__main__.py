import sys

from scoring.server import main

sys.exit(main())
