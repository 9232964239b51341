"""The text use case: labelled sentiment posts (negative / neutral / positive) split by a hash of their text, and text classifiers trained and compared on them."""
