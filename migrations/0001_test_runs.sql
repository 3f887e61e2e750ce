CREATE TABLE `test_run_shards` (
	`run_id` text NOT NULL,
	`shard_current` integer NOT NULL,
	`status` text NOT NULL,
	`hostname` text,
	`created_at` text NOT NULL,
	`updated_at` text NOT NULL,
	PRIMARY KEY(`run_id`, `shard_current`),
	FOREIGN KEY (`run_id`) REFERENCES `test_runs`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE TABLE `test_runs` (
	`number` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`id` text NOT NULL,
	`organization_id` text NOT NULL,
	`project_id` text NOT NULL,
	`build_id` text,
	`plan_id` text,
	`status` text NOT NULL,
	`shard_key` text,
	`branch` text,
	`commit_sha` text,
	`commit_message` text,
	`commit_author` text,
	`ci_provider` text,
	`ci_build_id` text,
	`ci_build_url` text,
	`playwright_version` text,
	`workers` integer,
	`shard_current` integer,
	`shard_total` integer,
	`browser` text,
	`os` text,
	`viewport` text,
	`hostname` text,
	`run_title` text,
	`tags` text DEFAULT '[]' NOT NULL,
	`grep_patterns` text DEFAULT '[]' NOT NULL,
	`total_tests` integer DEFAULT 0 NOT NULL,
	`passed_tests` integer DEFAULT 0 NOT NULL,
	`failed_tests` integer DEFAULT 0 NOT NULL,
	`skipped_tests` integer DEFAULT 0 NOT NULL,
	`flaky_tests` integer DEFAULT 0 NOT NULL,
	`duration_ms` integer DEFAULT 0 NOT NULL,
	`reported_counts` text,
	`submitted_at` text,
	`completion_token` text,
	`completed_at` text,
	`deleted_at` text,
	`created_at` text NOT NULL,
	`updated_at` text NOT NULL,
	FOREIGN KEY (`organization_id`) REFERENCES `organizations`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`project_id`) REFERENCES `projects`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `test_runs_id_unique` ON `test_runs` (`id`);--> statement-breakpoint
CREATE UNIQUE INDEX `test_runs_shard_key_idx` ON `test_runs` (`project_id`,`shard_key`);--> statement-breakpoint
CREATE INDEX `test_runs_project_created_idx` ON `test_runs` (`project_id`,`created_at`);--> statement-breakpoint
CREATE INDEX `test_runs_org_created_idx` ON `test_runs` (`organization_id`,`created_at`);--> statement-breakpoint
CREATE INDEX `test_runs_deleted_idx` ON `test_runs` (`deleted_at`);--> statement-breakpoint
CREATE TABLE `test_cases` (
	`number` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`id` text NOT NULL,
	`organization_id` text NOT NULL,
	`project_id` text NOT NULL,
	`identity_key` text NOT NULL,
	`automation_id` text,
	`title` text NOT NULL,
	`full_title` text NOT NULL,
	`file_path` text,
	`line_number` integer,
	`description` text,
	`tags` text DEFAULT '[]' NOT NULL,
	`created_at` text NOT NULL,
	`updated_at` text NOT NULL,
	FOREIGN KEY (`organization_id`) REFERENCES `organizations`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`project_id`) REFERENCES `projects`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `test_cases_id_unique` ON `test_cases` (`id`);--> statement-breakpoint
CREATE UNIQUE INDEX `test_cases_identity_idx` ON `test_cases` (`project_id`,`identity_key`);--> statement-breakpoint
CREATE INDEX `test_cases_project_file_idx` ON `test_cases` (`project_id`,`file_path`);--> statement-breakpoint
CREATE INDEX `test_cases_project_number_idx` ON `test_cases` (`project_id`,`number`);--> statement-breakpoint
CREATE TABLE `results` (
	`number` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`id` text NOT NULL,
	`organization_id` text NOT NULL,
	`project_id` text NOT NULL,
	`run_id` text NOT NULL,
	`test_case_id` text NOT NULL,
	`submission_id` text NOT NULL,
	`title` text NOT NULL,
	`full_title` text NOT NULL,
	`file_path` text,
	`line_number` integer,
	`status` text NOT NULL,
	`duration_ms` integer NOT NULL,
	`retries` integer DEFAULT 0 NOT NULL,
	`attempt` integer DEFAULT 1 NOT NULL,
	`is_flaky` integer DEFAULT false NOT NULL,
	`tags` text DEFAULT '[]' NOT NULL,
	`annotations` text DEFAULT '[]' NOT NULL,
	`error` text,
	`steps` text DEFAULT '[]' NOT NULL,
	`steps_key` text,
	`stdout` text,
	`stdout_key` text,
	`stderr` text,
	`stderr_key` text,
	`created_at` text NOT NULL,
	`updated_at` text NOT NULL,
	FOREIGN KEY (`run_id`) REFERENCES `test_runs`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`test_case_id`) REFERENCES `test_cases`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `results_id_unique` ON `results` (`id`);--> statement-breakpoint
CREATE UNIQUE INDEX `results_run_case_idx` ON `results` (`run_id`,`test_case_id`);--> statement-breakpoint
CREATE INDEX `results_run_status_idx` ON `results` (`run_id`,`status`,`is_flaky`,`duration_ms`);--> statement-breakpoint
CREATE INDEX `results_case_created_idx` ON `results` (`test_case_id`,`created_at`);--> statement-breakpoint
CREATE INDEX `results_project_created_idx` ON `results` (`project_id`,`created_at`);--> statement-breakpoint
CREATE INDEX `results_run_submission_idx` ON `results` (`run_id`,`submission_id`);--> statement-breakpoint
CREATE TABLE `test_suites` (
	`number` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`id` text NOT NULL,
	`organization_id` text NOT NULL,
	`project_id` text NOT NULL,
	`run_id` text NOT NULL,
	`parent_suite_id` text,
	`path_key` text NOT NULL,
	`title` text NOT NULL,
	`file_path` text,
	`created_at` text NOT NULL,
	`updated_at` text NOT NULL,
	FOREIGN KEY (`run_id`) REFERENCES `test_runs`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`parent_suite_id`) REFERENCES `test_suites`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `test_suites_id_unique` ON `test_suites` (`id`);--> statement-breakpoint
CREATE UNIQUE INDEX `test_suites_path_idx` ON `test_suites` (`run_id`,`path_key`);--> statement-breakpoint
CREATE INDEX `test_suites_parent_idx` ON `test_suites` (`parent_suite_id`);--> statement-breakpoint
CREATE TABLE `events` (
	`number` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`id` text NOT NULL,
	`organization_id` text NOT NULL,
	`project_id` text,
	`type` text NOT NULL,
	`subject_id` text,
	`payload` text NOT NULL,
	`created_at` text NOT NULL,
	`dispatched_at` text
);
--> statement-breakpoint
CREATE UNIQUE INDEX `events_id_unique` ON `events` (`id`);--> statement-breakpoint
CREATE INDEX `events_pending_idx` ON `events` (`dispatched_at`,`number`);--> statement-breakpoint
CREATE INDEX `events_org_idx` ON `events` (`organization_id`,`number`);--> statement-breakpoint
CREATE INDEX `events_subject_idx` ON `events` (`subject_id`);