"""The NY flights use case: silver/gold transforms, MapReduce statistics, features and stages."""
