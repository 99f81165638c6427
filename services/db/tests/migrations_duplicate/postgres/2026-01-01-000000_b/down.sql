DROP TABLE dup_b;
