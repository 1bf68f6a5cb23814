"""`make bench`: every benchmark in one run (accuracy, the paper's MLPs searched, the paper's configurations
through their circuits, any pair of bases, fidelity, circuit speed, KirchhoffNet, Monte Carlo
(and whether one parsed deck could serve its realizations; VACASK reruns of one parsed circuit), physical crossbars, lock-step co-simulation, closed-loop control, ngspice's Sparse against KLU, device curves as OSDI modules against B-sources, VACASK against ngspice,
the wired Fashion-MNIST table on both engines, a wired tile's Newton iterations on VACASK)."""

import accuracy
import control
import drive
import engines
import fidelity
import kirchhoff
import kirchhoff_digits
import kirchhoff_scale
import kirchhoff_table1
import lockstep
import mc_reuse
import mc_vacask
import mlp_search
import montecarlo
import newton
import osdi
import paper_circuits
import physical
import scale
import speed
import vacask

if __name__ == "__main__":
    accuracy.main(list(accuracy.RUNS))
    mlp_search.main([])
    mlp_search.main(["--low"])
    mlp_search.main(["--long", "rtd"])
    paper_circuits.main([])  # after accuracy.py and mlp_search.py, which train its models
    drive.main([])
    drive.main(["--user"])
    fidelity.main(["digits", "fashion-gain", "fashion-full"])
    speed.main()
    kirchhoff.main()
    kirchhoff_table1.main([])
    kirchhoff_table1.main(["--dataset", "diabetes"])
    kirchhoff_digits.main([])
    kirchhoff_scale.main([])
    montecarlo.main(["speed", "--full", "figures"])
    mc_reuse.main([])
    mc_vacask.main([])  # after montecarlo.py (its checkpoints): VACASK reruns beside ngspice
    physical.main(["digits"])
    physical.main(["cost"])  # trains its Fashion-MNIST [784,64,10] model if missing
    # the Fashion-MNIST wire table as far as ngspice reaches in hours: 1,000 images without wires, wired
    # cells on fewer (a wired 128-row image costs about a CPU minute; the whole table is 'physical.py fashion')
    physical.main(["fashion", "--ohms", "0"])
    physical.main(["fashion", "--samples", "100", "--tiles", "64", "--ohms", "0.1,1,10,100"])
    physical.main(["fashion", "--samples", "20", "--tiles", "128", "--ohms", "1,10"])
    physical.main(["fashion", "--samples", "1000", "--tiles", "32", "--ohms", "1"])  # the 15-minute goal, timed
    lockstep.main()
    control.main([])
    engines.main([])
    osdi.main([])  # after engines.py, which trains the [64,32,10] digits model
    vacask.main([])  # VACASK against ngspice; after engines.py (its models)
    # the wired Fashion-MNIST table on both engines (CPU s per image, tiles 64/128/256), VACASK's options and
    # threads, and 1,000 wired images on VACASK (the 15-minute goal) with the engines' agreement on a subset
    scale.main(["table"])
    scale.main(["tuning"])
    physical.main(["fashion", "--samples", "1000", "--tiles", "64", "--ohms", "1", "--engine", "vacask", "--jobs", "2"])
    scale.main(["summary"])
    newton.main()  # where a wired tile's time goes on VACASK: iterations a point, factorizations
