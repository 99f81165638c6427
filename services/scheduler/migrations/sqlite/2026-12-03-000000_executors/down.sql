DROP INDEX tasks_by_executor;
DROP TABLE executors;
