import sys

from serving.tf_serving import main

sys.exit(main())
