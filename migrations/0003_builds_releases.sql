CREATE TABLE `builds` (
	`number` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`id` text NOT NULL,
	`organization_id` text NOT NULL,
	`project_id` text NOT NULL,
	`release_id` text,
	`name` text NOT NULL,
	`build_number` text,
	`commit_sha` text,
	`branch` text,
	`repo_url` text,
	`status` text NOT NULL,
	`source` text NOT NULL,
	`created_at` text NOT NULL,
	`updated_at` text NOT NULL,
	FOREIGN KEY (`organization_id`) REFERENCES `organizations`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`project_id`) REFERENCES `projects`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`release_id`) REFERENCES `releases`(`id`) ON UPDATE no action ON DELETE set null
);
--> statement-breakpoint
CREATE UNIQUE INDEX `builds_id_unique` ON `builds` (`id`);--> statement-breakpoint
CREATE UNIQUE INDEX `builds_project_number_idx` ON `builds` (`project_id`,`build_number`) WHERE build_number IS NOT NULL;--> statement-breakpoint
CREATE UNIQUE INDEX `builds_project_commit_name_idx` ON `builds` (`project_id`,`commit_sha`,`name`) WHERE commit_sha IS NOT NULL;--> statement-breakpoint
CREATE INDEX `builds_project_idx` ON `builds` (`project_id`,`number`);--> statement-breakpoint
CREATE INDEX `builds_release_idx` ON `builds` (`release_id`,`number`);--> statement-breakpoint
CREATE INDEX `builds_org_idx` ON `builds` (`organization_id`,`number`);--> statement-breakpoint
CREATE TABLE `releases` (
	`number` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`id` text NOT NULL,
	`organization_id` text NOT NULL,
	`project_id` text NOT NULL,
	`name` text NOT NULL,
	`version` text,
	`status` text NOT NULL,
	`target_date` text,
	`gate` text DEFAULT '{}' NOT NULL,
	`released_at` text,
	`created_at` text NOT NULL,
	`updated_at` text NOT NULL,
	FOREIGN KEY (`organization_id`) REFERENCES `organizations`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`project_id`) REFERENCES `projects`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `releases_id_unique` ON `releases` (`id`);--> statement-breakpoint
CREATE UNIQUE INDEX `releases_project_name_idx` ON `releases` (`project_id`,`name`);--> statement-breakpoint
CREATE INDEX `releases_org_idx` ON `releases` (`organization_id`,`number`);--> statement-breakpoint
CREATE INDEX `test_runs_build_idx` ON `test_runs` (`build_id`);