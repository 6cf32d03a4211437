"""What people read: figures and the self-contained HTML report."""
