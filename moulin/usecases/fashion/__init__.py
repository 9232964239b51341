"""The image use case: a catalogue's product photos (Fashion-MNIST) landed as IDX files,
gated into bronze, split in silver, and image classifiers trained from scratch and
fine-tuned from a pretrained network, compared on the official test set."""
