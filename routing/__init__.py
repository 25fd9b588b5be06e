"""Plan couriers' rounds: the data model, input readers, the OR-Tools solver, the plan checker and KPIs."""
