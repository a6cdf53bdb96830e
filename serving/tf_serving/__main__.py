import sys

from serving.tf_serving.deployment import main

sys.exit(main())
