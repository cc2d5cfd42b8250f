"""What `train` writes and every other pipeline reads: the model layout, its feature column, its names."""
