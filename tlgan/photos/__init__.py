"""Real photos: find the faces in any photo and align one to the generator's framing."""
