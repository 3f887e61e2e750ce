CREATE TABLE `artifact_parts` (
	`artifact_id` text NOT NULL,
	`part_number` integer NOT NULL,
	`size` integer NOT NULL,
	`etag` text NOT NULL,
	`created_at` text NOT NULL,
	PRIMARY KEY(`artifact_id`, `part_number`),
	FOREIGN KEY (`artifact_id`) REFERENCES `artifacts`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE TABLE `artifacts` (
	`number` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`id` text NOT NULL,
	`organization_id` text NOT NULL,
	`project_id` text NOT NULL,
	`run_id` text NOT NULL,
	`result_id` text,
	`type` text NOT NULL,
	`file_name` text NOT NULL,
	`format` text,
	`mime_type` text,
	`size` integer,
	`object_key` text NOT NULL,
	`status` text NOT NULL,
	`upload_id` text,
	`expires_at` text,
	`created_by` text,
	`created_at` text NOT NULL,
	`updated_at` text NOT NULL,
	FOREIGN KEY (`run_id`) REFERENCES `test_runs`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `artifacts_id_unique` ON `artifacts` (`id`);--> statement-breakpoint
CREATE INDEX `artifacts_run_idx` ON `artifacts` (`run_id`,`number`);--> statement-breakpoint
CREATE INDEX `artifacts_result_idx` ON `artifacts` (`result_id`,`number`);--> statement-breakpoint
CREATE INDEX `artifacts_org_idx` ON `artifacts` (`organization_id`,`number`);--> statement-breakpoint
CREATE INDEX `artifacts_uploading_idx` ON `artifacts` (`expires_at`) WHERE status = 'uploading';