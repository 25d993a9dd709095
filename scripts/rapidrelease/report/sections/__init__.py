"""The lot report's sections: each turns typed records into the small views its template shows."""
