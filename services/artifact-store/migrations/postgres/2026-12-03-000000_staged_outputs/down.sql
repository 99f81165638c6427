DROP TABLE staged_outputs;
