ALTER TABLE `project_settings` ADD `flakiness_window` integer DEFAULT 30 NOT NULL;--> statement-breakpoint
ALTER TABLE `project_settings` ADD `flakiness_min_samples` integer DEFAULT 5 NOT NULL;--> statement-breakpoint
ALTER TABLE `test_cases` ADD `flakiness_score` real;--> statement-breakpoint
ALTER TABLE `test_cases` ADD `flaky_runs` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `test_cases` ADD `total_runs` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `test_cases` ADD `flip_rate` real;--> statement-breakpoint
ALTER TABLE `test_cases` ADD `same_commit_conflicts` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `test_cases` ADD `pass_on_retry` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `test_cases` ADD `flakiness_confidence` real;--> statement-breakpoint
ALTER TABLE `test_cases` ADD `flakiness_updated_at` text;--> statement-breakpoint
CREATE INDEX `test_cases_project_flakiness_idx` ON `test_cases` (`project_id`,`flakiness_score`);