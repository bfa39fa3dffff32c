import sys

from jobchat.cli import main

sys.exit(main())
