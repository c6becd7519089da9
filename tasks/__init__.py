"""The work of each pipeline stage as plain typed functions; their Prefect tasks are one-line
wrappers in each stage's prefect_tasks module (tasks/cycle_tasks.py etc. for one-module stages)."""

from tasks.models import kernel_guard as _kernel_guard

# Before any stage imports peft (and with it bitsandbytes): see tasks/models/kernel_guard.py.
_kernel_guard.install()
