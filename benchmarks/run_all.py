"""`make bench`: every benchmark in one run (accuracy, fidelity, circuit speed)."""

import accuracy
import fidelity
import speed

if __name__ == "__main__":
    accuracy.main(list(accuracy.RUNS))
    fidelity.main(["digits", "fashion-gain", "fashion-full"])
    speed.main()
