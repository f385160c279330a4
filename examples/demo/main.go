// Command demo prepares and plays the README's local demo against DynamoDB Local: it creates the
// GameScores table with a stream, then writes a little game: players join (INSERT), beat their top
// score (MODIFY) and leave (REMOVE).
//
//	go run ./examples/demo -endpoint http://127.0.0.1:8000 setup
//	go run ./examples/demo -endpoint http://127.0.0.1:8000 play
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

func main() {
	endpoint := flag.String("endpoint", "http://127.0.0.1:8000", "DynamoDB Local endpoint")
	table := flag.String("table", "GameScores", "table name")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db := dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(*endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("demo", "demo", ""),
	})
	var err error
	switch flag.Arg(0) {
	case "setup":
		err = setup(ctx, db, *table)
	case "play":
		err = play(ctx, db, *table)
	default:
		err = errors.New("usage: demo [-endpoint URL] setup|play")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func setup(ctx context.Context, db *dynamodb.Client, table string) error {
	_, err := db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName: aws.String(table),
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String("UserId"), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String("GameTitle"), AttributeType: types.ScalarAttributeTypeS},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String("UserId"), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String("GameTitle"), KeyType: types.KeyTypeRange},
		},
		BillingMode: types.BillingModePayPerRequest,
		StreamSpecification: &types.StreamSpecification{
			StreamEnabled: aws.Bool(true), StreamViewType: types.StreamViewTypeNewAndOldImages,
		},
	})
	var exists *types.ResourceInUseException
	if errors.As(err, &exists) {
		fmt.Printf("table %s exists\n", table)
		return nil
	}
	if err != nil {
		return fmt.Errorf("create table %s: %w", table, err)
	}
	if err := dynamodb.NewTableExistsWaiter(db).Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)}, time.Minute); err != nil {
		return fmt.Errorf("wait for table %s: %w", table, err)
	}
	fmt.Printf("created table %s with a NEW_AND_OLD_IMAGES stream\n", table)
	return nil
}

func play(ctx context.Context, db *dynamodb.Client, table string) error {
	players := []string{"alice", "bob", "carol"}
	put := func(user string, score int) error {
		_, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: map[string]types.AttributeValue{
			"UserId":    &types.AttributeValueMemberS{Value: user},
			"GameTitle": &types.AttributeValueMemberS{Value: "Meteor Blasters"},
			"TopScore":  &types.AttributeValueMemberN{Value: strconv.Itoa(score)},
			"Wins":      &types.AttributeValueMemberN{Value: "0"},
		}})
		return err
	}
	for _, p := range players {
		if err := put(p, 0); err != nil {
			return fmt.Errorf("insert %s: %w", p, err)
		}
		fmt.Printf("INSERT  %-6s TopScore=0\n", p)
	}
	for i, p := range players {
		score := 1000 * (i + 1)
		if err := put(p, score); err != nil {
			return fmt.Errorf("update %s: %w", p, err)
		}
		fmt.Printf("MODIFY  %-6s TopScore=%d\n", p, score)
	}
	_, err := db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(table), Key: map[string]types.AttributeValue{
		"UserId":    &types.AttributeValueMemberS{Value: "bob"},
		"GameTitle": &types.AttributeValueMemberS{Value: "Meteor Blasters"},
	}})
	if err != nil {
		return fmt.Errorf("delete bob: %w", err)
	}
	fmt.Println("REMOVE  bob")
	return nil
}
