DROP TABLE dup_a;
