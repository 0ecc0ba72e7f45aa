"""Reports over a period: response times, flights and hours per drone, battery cycles, patrol completion."""
