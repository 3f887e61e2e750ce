CREATE TABLE `contexts` (
	`number` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`id` text NOT NULL,
	`organization_id` text NOT NULL,
	`project_id` text NOT NULL,
	`name` text NOT NULL,
	`data` text DEFAULT '{}' NOT NULL,
	`created_at` text NOT NULL,
	`updated_at` text NOT NULL,
	FOREIGN KEY (`project_id`) REFERENCES `projects`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `contexts_id_unique` ON `contexts` (`id`);--> statement-breakpoint
CREATE UNIQUE INDEX `contexts_project_name_idx` ON `contexts` (`project_id`,`name`);--> statement-breakpoint
CREATE TABLE `environments` (
	`number` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`id` text NOT NULL,
	`organization_id` text NOT NULL,
	`project_id` text NOT NULL,
	`name` text NOT NULL,
	`base_url` text,
	`variables` text DEFAULT '{}' NOT NULL,
	`created_at` text NOT NULL,
	`updated_at` text NOT NULL,
	FOREIGN KEY (`project_id`) REFERENCES `projects`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `environments_id_unique` ON `environments` (`id`);--> statement-breakpoint
CREATE UNIQUE INDEX `environments_project_name_idx` ON `environments` (`project_id`,`name`);--> statement-breakpoint
CREATE TABLE `jobs` (
	`number` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`id` text NOT NULL,
	`organization_id` text NOT NULL,
	`project_id` text NOT NULL,
	`run_id` text NOT NULL,
	`plan_id` text,
	`test_type` text NOT NULL,
	`build_ref` text,
	`device_name` text,
	`platform_version` text,
	`environment_id` text,
	`context_id` text,
	`labels` text DEFAULT '[]' NOT NULL,
	`cookies_sealed` text,
	`credits_charged` integer DEFAULT 0 NOT NULL,
	`status` text NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`max_attempts` integer DEFAULT 3 NOT NULL,
	`lease_until` text,
	`claimed_by` text,
	`runner_name` text,
	`error` text,
	`created_at` text NOT NULL,
	`updated_at` text NOT NULL,
	`finished_at` text,
	FOREIGN KEY (`run_id`) REFERENCES `test_runs`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `jobs_id_unique` ON `jobs` (`id`);--> statement-breakpoint
CREATE INDEX `jobs_claimable_idx` ON `jobs` (`organization_id`,`number`) WHERE status IN ('queued', 'claimed');--> statement-breakpoint
CREATE INDEX `jobs_run_idx` ON `jobs` (`run_id`);--> statement-breakpoint
CREATE TABLE `test_plans` (
	`number` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`id` text NOT NULL,
	`organization_id` text NOT NULL,
	`project_id` text NOT NULL,
	`name` text NOT NULL,
	`description` text,
	`default_test_type` text DEFAULT 'quickTest' NOT NULL,
	`tags` text DEFAULT '{}' NOT NULL,
	`test_case_ids` text DEFAULT '[]' NOT NULL,
	`file_patterns` text DEFAULT '[]' NOT NULL,
	`cookies_sealed` text,
	`created_at` text NOT NULL,
	`updated_at` text NOT NULL,
	FOREIGN KEY (`organization_id`) REFERENCES `organizations`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`project_id`) REFERENCES `projects`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `test_plans_id_unique` ON `test_plans` (`id`);--> statement-breakpoint
CREATE INDEX `test_plans_project_idx` ON `test_plans` (`project_id`,`number`);--> statement-breakpoint
CREATE INDEX `test_plans_org_idx` ON `test_plans` (`organization_id`,`number`);--> statement-breakpoint
ALTER TABLE `organizations` ADD `credits` integer;--> statement-breakpoint
ALTER TABLE `organizations` ADD `credit_cost_quick` integer DEFAULT 1 NOT NULL;--> statement-breakpoint
ALTER TABLE `organizations` ADD `credit_cost_deep` integer DEFAULT 3 NOT NULL;