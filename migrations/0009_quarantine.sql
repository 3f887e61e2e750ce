ALTER TABLE `test_cases` ADD `last_flaky_at` text;--> statement-breakpoint
ALTER TABLE `test_cases` ADD `is_quarantined` integer DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE `test_cases` ADD `quarantined_at` text;--> statement-breakpoint
ALTER TABLE `test_cases` ADD `quarantined_by` text;--> statement-breakpoint
ALTER TABLE `test_cases` ADD `quarantine_reason` text;