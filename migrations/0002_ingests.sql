CREATE TABLE `ingest_parts` (
	`ingest_id` text NOT NULL,
	`part_number` integer NOT NULL,
	`bytes` integer NOT NULL,
	`segments` integer NOT NULL,
	`upload` text NOT NULL,
	`sha256` text NOT NULL,
	`created_at` text NOT NULL,
	PRIMARY KEY(`ingest_id`, `part_number`),
	FOREIGN KEY (`ingest_id`) REFERENCES `ingests`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE TABLE `ingests` (
	`number` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`id` text NOT NULL,
	`organization_id` text NOT NULL,
	`project_id` text NOT NULL,
	`key_id` text NOT NULL,
	`status` text NOT NULL,
	`format` text,
	`content_type` text,
	`target` text NOT NULL,
	`run_id` text,
	`created_run` integer DEFAULT false NOT NULL,
	`bytes_total` integer DEFAULT 0 NOT NULL,
	`parts` integer DEFAULT 0 NOT NULL,
	`results` integer DEFAULT 0 NOT NULL,
	`superseded` integer DEFAULT 0 NOT NULL,
	`chunks` integer DEFAULT 0 NOT NULL,
	`bytes_processed` integer DEFAULT 0 NOT NULL,
	`d1_calls` integer DEFAULT 0 NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`report_totals` text,
	`error` text,
	`lease_until` text,
	`created_at` text NOT NULL,
	`updated_at` text NOT NULL,
	`started_at` text,
	`finished_at` text,
	`expires_at` text,
	FOREIGN KEY (`organization_id`) REFERENCES `organizations`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`project_id`) REFERENCES `projects`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `ingests_id_unique` ON `ingests` (`id`);--> statement-breakpoint
CREATE INDEX `ingests_status_idx` ON `ingests` (`status`,`updated_at`);--> statement-breakpoint
CREATE INDEX `ingests_org_idx` ON `ingests` (`organization_id`,`number`);