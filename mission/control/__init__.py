"""Control authority: one pilot holds a vehicle at a time; taking, releasing and handing off are audited."""
