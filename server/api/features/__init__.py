"""The root fields, one module per feature: each holds its Query, Mutation and Subscription
fields and the payload types its mutations answer with. schema.py merges them; the object
types they return are in server/api/types/."""
