"""The e-mail use case: a mail gateway's mailboxes (SpamAssassin public corpus) landed
as a personal-data source, pseudonymised at bronze, labelled in silver, and a spam
filter trained on the pseudonymised data."""
