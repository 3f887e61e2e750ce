ALTER TABLE `project_settings` ADD `quarantine_recovery_days` integer DEFAULT 7 NOT NULL;--> statement-breakpoint
ALTER TABLE `project_settings` ADD `quarantine_recovery_runs` integer DEFAULT 20 NOT NULL;--> statement-breakpoint
ALTER TABLE `project_settings` ADD `scored_tests` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `project_settings` ADD `score_sum` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `project_settings` ADD `flaky_tests` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `project_settings` ADD `quarantined_tests` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `test_runs` ADD `quarantined_failures` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `test_runs` ADD `status_reason` text;--> statement-breakpoint
ALTER TABLE `test_cases` ADD `quarantine_source` text;--> statement-breakpoint
ALTER TABLE `test_cases` ADD `quarantine_released_at` text;--> statement-breakpoint
ALTER TABLE `test_cases` ADD `flakiness_window_start` text;--> statement-breakpoint
ALTER TABLE `test_cases` ADD `flakiness_stale` text;--> statement-breakpoint
CREATE INDEX `test_cases_project_quarantine_idx` ON `test_cases` (`project_id`,`is_quarantined`,`flakiness_score`);--> statement-breakpoint
CREATE INDEX `test_cases_stale_idx` ON `test_cases` (`project_id`) WHERE flakiness_stale IS NOT NULL;--> statement-breakpoint
CREATE INDEX `test_cases_auto_quarantine_idx` ON `test_cases` (`project_id`,`quarantined_at`) WHERE is_quarantined = 1 AND quarantine_source = 'auto';--> statement-breakpoint
-- Quarantines set before sources were recorded were set by people.
UPDATE `test_cases` SET `quarantine_source` = 'manual' WHERE `is_quarantined` = 1;--> statement-breakpoint
-- The summary counters start from the scores already stored.
UPDATE `project_settings` SET (`scored_tests`, `score_sum`, `flaky_tests`, `quarantined_tests`) = (
  SELECT count(tc.`flakiness_score`), coalesce(sum(CAST(round(tc.`flakiness_score` * 10000) AS INTEGER)), 0),
    coalesce(sum(tc.`flakiness_score` >= `project_settings`.`flakiness_threshold`), 0), coalesce(sum(tc.`is_quarantined`), 0)
  FROM `test_cases` tc WHERE tc.`project_id` = `project_settings`.`project_id`);
