"""Which restore points go: a schedule's retention rules and the safety restore points' age limit."""
