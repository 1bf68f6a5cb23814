"""`make bench`: every benchmark in one run (accuracy, then circuit speed)."""

import accuracy
import speed

if __name__ == "__main__":
    accuracy.main(list(accuracy.RUNS))
    speed.main()
