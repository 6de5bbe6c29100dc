"""HTTP routes: parse, authorise, call a service, map errors. No SQL here."""
