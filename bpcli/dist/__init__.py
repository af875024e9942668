"""Data-parallel training over MPI (``mpiexec -n N bpcli train SPEC``, ``--workers N``).

Optional (``pip install 'bpcli[mpi]'``): a single process never imports this package, so
``mpi4py`` is needed only when several ranks run. Horovod's design: rank 0's initial state is
broadcast, each global batch is split into disjoint shards, the gradients are summed in one
flat buffer with one in-place ``Allreduce`` per step (weighted by shard size, so the result is
the global batch's mean), and every rank then clips, steps and schedules identically. Only
rank 0 writes the run directory.

``comm`` wraps mpi4py; ``parallel`` is what the training loop calls; ``guard`` turns an error
on one rank into one line and ``MPI_Abort`` (never a hang); ``launch`` starts ``mpiexec`` for
``--workers``; ``syncbn`` reduces BatchNorm statistics across ranks.

May import ``app`` and everything below it; nothing but ``cli`` imports it.
"""
