"""`field__any=[...]`: `field = ANY(%s)` with the list as one array parameter (PostgreSQL).

A check looks up thousands of values at once. `__in` sends one placeholder per value, which
Django prepares one by one and PostgreSQL plans as a literal list; one array parameter costs a
fraction of that and gives the planner one stable shape. Other databases fall back to IN.
"""

from __future__ import annotations

from django.db.models import Field, ForeignKey, Lookup


class AnyLookup(Lookup):
    lookup_name = "any"
    prepare_rhs = False

    def get_db_prep_lookup(self, value, connection):
        return "%s", [list(value)]

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        if connection.vendor == "postgresql":
            return f"{lhs} = ANY({rhs})", [*lhs_params, *rhs_params]
        field = self.lhs.output_field
        values = [field.get_db_prep_value(value, connection, prepared=False) for value in rhs_params[0]]
        if not values:
            return "1 = 0", list(lhs_params)
        return f"{lhs} IN ({', '.join(['%s'] * len(values))})", [*lhs_params, *values]


Field.register_lookup(AnyLookup)
# Related fields only offer the lookups registered on them: `work_id__any=[...]` needs this.
ForeignKey.register_lookup(AnyLookup)
