"""Trial designs: arms, allocation and who is treated when."""
