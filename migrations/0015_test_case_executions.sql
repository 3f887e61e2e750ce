ALTER TABLE `test_cases` ADD `executions` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
-- Counted once here; results writes and deletes keep it from now on.
UPDATE `test_cases` SET `executions` = (SELECT count(*) FROM `results` r WHERE r.`test_case_id` = `test_cases`.`id`);
