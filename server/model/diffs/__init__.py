"""What differs between two configurations, and inside one item."""
