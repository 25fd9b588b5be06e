"""Plan couriers' rounds: data model, readers, OR-Tools solver, plan checker and KPIs.

The solver module (which imports OR-Tools) is not imported here; use
``from routing.solver import solve``.
"""

from routing import check as check
from routing import errors as errors
from routing import kpi as kpi
from routing import model as model
from routing import params as params
from routing import plan as plan
from routing import progress as progress
